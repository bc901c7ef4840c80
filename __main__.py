from ottla.server.cli import main

raise SystemExit(main())
