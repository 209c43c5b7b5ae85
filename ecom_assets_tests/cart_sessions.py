"""Request bodies shared by the serving tests."""

# A session at its first add-to-cart, every required feature given (the optional ones default).
SESSION = {
    "views_before_cart": 7,
    "other_items_viewed": 3,
    "cart_item_views": 2,
    "minutes_to_first_cart": 14.5,
    "cart_item_price": 24.9,
    "experiment_group": "treatment",
    "previous_sessions": 1,
    "previous_purchases": 0,
}
