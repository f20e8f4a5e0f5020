"""`python -m cds` is the `cds` command."""

from cds.tools.cli import main

raise SystemExit(main())
