"""The parts of chat templating that :mod:`zoo.chat_template` builds on.

:mod:`zoo.chat.sandbox` compiles and renders templates in jinja2's immutable sandbox, with the filters and globals
transformers gives templates; :mod:`zoo.chat.tools` turns Python functions into the JSON schemas templates print for
tool use. Neither imports jinja2 (or torch) until a template is actually compiled.
"""
