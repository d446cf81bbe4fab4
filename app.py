"""kdtts demo: `python app.py` (port from GRADIO_SERVER_PORT, default 7860). The UI lives in kdtts/ui."""
from kdtts.ui.app import main

if __name__ == "__main__":
    main()
