"""The routes of ``/api/v1``, one module per kind of object."""
