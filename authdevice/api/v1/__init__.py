"""authdevice's native JSON API (``/api/v1/``): server-issued, client-bound challenges."""
