from xlray.cli import main

raise SystemExit(main())
