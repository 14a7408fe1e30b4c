"""Replay tools for engineers (issue 9): offsets and saved state moved together, archives of
the input topics, and dead letters sent back after a fix. The CLI shells are in vtops/cli/."""
