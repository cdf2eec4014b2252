"""The ``stemedb admin`` command groups, one module each; ``admin_cmds`` assembles them."""
