"""The Compose page's drawing, one module per part of the page (pages/2_Compose.py is its main())."""
