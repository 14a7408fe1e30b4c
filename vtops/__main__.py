"""`python -m vtops`: the same CLI as the `vtops` script, for child processes of the demo."""

from vtops.cli.main import app

app()
