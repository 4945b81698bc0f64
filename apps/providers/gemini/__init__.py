"""The gemini provider: Veo and Gemini Omni through Google's Gemini API (reference/providers/veo.md)."""
