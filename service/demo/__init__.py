"""`callwatch demo`: the service on its embedded defaults, one link that opens the agent screen signed in, and
the bundled sample call played into it once that screen is watching.

The demo used to stream its 26-second call the moment the server was up, so a newcomer who opened the printed
address found the call already over. Now it waits for the screen it linked to (`waiting.py`), then plays the
call (`run.py`) in a server of its own process (`server.py`), and at a terminal plays it again on Enter.
"""
