"""The dashboard's forms, one module per area."""
