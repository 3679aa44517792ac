"""The domain: every state change is one function here (DESIGN.md section 1)."""
