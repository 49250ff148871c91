"""jobgov's Temporal layer: payloads, workflow state, workflows, activities and the plugin.

Importing this package loads nothing: workflows (:mod:`.workflows`) import only the
domain, the payloads and the state; activities (:mod:`.activities`) bring the HTTP
client; :mod:`.plugin` composes both.
"""
