"""`python -m cds` is the `cds` command."""

from cds.cli import main

raise SystemExit(main())
