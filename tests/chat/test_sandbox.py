"""zoo.chat.sandbox: templates that try to escape are refused and change nothing; real templates keep every tool
they use; what a template is given is plain data, as transformers gives it."""

from __future__ import annotations

import copy
import datetime as datetime_module

import pytest

from zoo import chat_template as ct
from zoo.chat import sandbox
from zoo.errors import ChatTemplateError, MissingDependencyError

hf_chat_utils = pytest.importorskip("transformers.utils.chat_template_utils")

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
                                            "parameters": {"type": "object", "properties": {}}}}
DOCUMENTS = [{"title": "Weather report", "text": "Paris: sunny."}]


def test_compiled_templates_are_cached():
    template = "{{ messages | length }} cached"
    assert sandbox.compile_template(template) is sandbox.compile_template(template)
    assert ct.render_chat_template(template, [[{"role": "user", "content": "x"}]] * 2)[0] == ["1 cached"] * 2


ESCAPES = {
    "class-mro": "{{ ''.__class__.__mro__ }}",
    "class-printed": "{{ ''.__class__ }}",
    "class-tested": "{% if messages.__class__ %}x{% endif %}",
    "subclasses": "{{ ().__class__.__base__.__subclasses__() }}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "raise-exception-globals": "{{ raise_exception.__globals__ }}",
    "strftime-code": "{{ strftime_now.__code__ }}",
    "dict-type": "{{ dict.__class__.__mro__ }}",
    "namespace-init": "{{ namespace.__init__.__globals__ }}",
    "template-context": "{{ self._TemplateReference__context }}",
    "format-string": "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "getitem-dunder": "{{ messages['__class__'] }}",
    "include-file": "{% include '{secret}' %}",
    "import-file": "{% import '{secret}' as s %}",
    "from-import": "{% from '{secret}' import x %}",
    "extends-file": "{% extends '{secret}' %}",
    "append": "{{ messages.append({'role': 'user', 'content': 'pwned'}) }}",
    "pop": "{% set _ = messages.pop() %}",
    "update": "{% set _ = messages[0].update({'content': 'pwned'}) %}",
    "setattr": "{% for m in messages %}{% set m.content = 'pwned' %}{% endfor %}",
    "namespace-underscore": "{% set ns = namespace() %}{% set ns._x = 1 %}",
    "huge-range": "{{ range(10**9) | length }}",
    "huge-repeat": "{{ 'x' * 10**9 }}",
    "huge-list-repeat": "{{ ([1] * 10**8) | length }}",
    "huge-power": "{{ 7 ** (10**9) }}",
    "recursion": "{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}",
}


@pytest.mark.parametrize("name", ESCAPES)
def test_sandbox_refuses_escapes_and_does_nothing(tmp_path, name):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    template = ESCAPES[name].replace("{secret}", str(secret))
    messages = [{"role": "user", "content": "hi"}]
    before = copy.deepcopy(messages)
    with pytest.raises(ChatTemplateError) as info:
        ct.render_chat_template(template, [messages], tools=[WEATHER], documents=DOCUMENTS)
    assert "TOP-SECRET-VALUE" not in str(info.value)
    assert messages == before and WEATHER["function"]["name"] == "get_weather"


def test_sandbox_keeps_what_real_templates_use(monkeypatch):
    class Frozen(datetime_module.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime_module.datetime(2025, 3, 14)

    monkeypatch.setattr(hf_chat_utils, "datetime", Frozen)
    monkeypatch.setattr(sandbox, "datetime", Frozen)
    template = ("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}"
                "{{ ns.n }}|{{ messages[0].items() | list | length }}|{{ dict(a=1) | tojson }}|{{ '=' * 3 }}|"
                "{{ 2 ** 10 }}|{{ range(3) | list }}|{{ {'k': '<é>'} | tojson(indent=1, sort_keys=True) }}|"
                "{{ 'a,b'.split(',') }}|{{ '{}-{}'.format('x', 'y') }}|{{ strftime_now('%Y') }}|"
                "{% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}")
    got = ct.render_chat_template(template, [[{"role": "user", "content": "hi"}]])[0][0]
    expected = hf_chat_utils.render_jinja_template([[{"role": "user", "content": "hi"}]], chat_template=template)[0][0]
    assert got == expected and got.startswith("1|2|{\"a\": 1}|===|1024|[0, 1, 2]|{\n \"k\": \"<é>\"\n}")


def test_template_variables_are_plain_copies():
    class Rich:
        def dangerous(self):
            raise AssertionError("a template must never reach this method")

    template = "{{ obj }}|{{ flag }}|{{ messages[0].content }}|{{ number }}"
    numpy = pytest.importorskip("numpy")
    got = ct.render_chat_template(template, [[{"role": "user", "content": "hi"}]], obj=Rich(), flag=numpy.bool_(False),
                                  number=numpy.int64(3))[0][0]
    expected = hf_chat_utils.render_jinja_template([[{"role": "user", "content": "hi"}]], chat_template=template,
                                                   obj=Rich(), flag=numpy.bool_(False), number=numpy.int64(3))[0][0]
    assert got == expected == "<Rich>|False|hi|3"


def test_old_jinja2_is_refused(monkeypatch):
    monkeypatch.setattr(sandbox, "_environment", None)
    monkeypatch.setattr(sandbox.jinja2, "__version__", "3.1.4")
    with pytest.raises(MissingDependencyError, match="jinja2>=3.1.6.*found jinja2 3.1.4"):
        sandbox.compile_template("{{ 'a template compiled by no other test' }}")
    monkeypatch.undo()
    assert sandbox.compile_template("{{ 'a template compiled by no other test' }}").render() == "a template compiled by no other test"
