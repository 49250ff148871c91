"""The opencode adapter: its HTTP API, its events, and the prices of its model calls.

- :mod:`.client`: the typed HTTP client of ``opencode serve``.
- :mod:`.events`: event parsing (recorded lines and live frames) and pure translations.
- :mod:`.usage`: steps read from step-finish parts, counted once by part id.
- :mod:`.pricing`: a step's price, from overrides or genai-prices.
"""
