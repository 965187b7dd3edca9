"""Command-line interface: ``caltrain COMMAND``. One module per subcommand; see :mod:`caltrain.cli.main`."""
