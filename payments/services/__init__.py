"""Services of the payments domain: every write goes through one of these (STYLE §1)."""
