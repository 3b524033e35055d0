"""`python -m app` runs the diffwise command line."""

from app.cli import main

raise SystemExit(main())
