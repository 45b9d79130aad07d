"""Built-in plugins. They register through the `honeychat` entry-point group like any other."""
