from ipdebug.cli import main

raise SystemExit(main())
