"""The dashboard's pages, one module per area; portal/urls.py maps them."""
