"""Operations: make an installation's state (setup), run its services (services), the demo."""
