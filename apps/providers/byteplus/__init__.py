"""BytePlus ModelArk (Seedance, the Ark content generation task API)."""
