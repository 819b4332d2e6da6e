"""Built-in plugins. Each package's ``__init__`` holds only hookimpls; its model code loads on first use."""
