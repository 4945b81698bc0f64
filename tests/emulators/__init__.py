def emulator_class(slug: str):
    """The emulator class of provider ``slug`` (``tests/emulators/<slug>.py``'s ``EMULATOR``), or
    None for a provider that makes no network calls (the sandbox)."""
    from importlib import import_module

    try:
        module = import_module(f"tests.emulators.{slug}")
    except ModuleNotFoundError as exc:
        if exc.name == f"tests.emulators.{slug}":
            return None
        raise
    return module.EMULATOR
