"""Post-incident reports: workflow histories and the store in, Markdown and HTML out.

``build.build_report`` turns an incident record and its runs' histories into a ``model.Report``;
``render.render_markdown`` / ``render.render_html`` lay it out through ``templates/``. On the
way: ``timeline`` selects and orders the history events (``describe`` words each one),
``runs`` reads a run's input, activities and results, ``sections``, ``impact`` and
``repairs`` fill the postmortem's sections, ``facts`` drafts what went well, wrong and lucky,
``chart`` lays out the SVG timeline.
"""
