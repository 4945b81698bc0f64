"""The two API shapes over the same generations: MediaRouter's own (``native``, DESIGN §7) and the
OpenAI Videos API (``openai``), sharing one request parser (``parsing``) and their output shapes
(``serializers``). URLs: ``urls``. The usage and estimate endpoints are apps.billing.api."""
