"""Sphinx configuration of the dsgdn-pyg documentation.

Build (no network; warnings are errors, as in .ci/run):

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""
import os
import sys

import click
from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging

sys.path.insert(0, os.path.abspath('..'))
import dsgdn_pyg  # noqa: E402

project = 'dsgdn-pyg'
author = 'dsgdn-pyg contributors'
copyright = '2026, dsgdn-pyg contributors'
release = version = dsgdn_pyg.__version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'myst_parser',
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
exclude_patterns = ['_build', '_generated']
myst_heading_anchors = 4

# PyG's docstring style: Google-style "Args:" sections with types in parentheses.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # the signatures carry the types; PyG's "Args:" carry them too
autodoc_default_options = {'members': True, 'show-inheritance': False}
# The library's optional extras (sentence-transformers, opensmile, matplotlib) are imported
# lazily inside functions, so nothing has to be mocked for autodoc.

html_theme = 'alabaster'
html_static_path = []


def _write_cli_help(app):
    """Writes `dsgdn-pyg [COMMAND] --help` into _generated/ (one text file per command, and
    commands.rst, the sections that docs/cli.rst includes, paths relative to it): the CLI page is generated from
    the same declarations as the CLI itself, so a new command or option appears by itself."""
    from dsgdn_pyg.cli import main

    out = os.path.join(app.srcdir, '_generated')
    os.makedirs(out, exist_ok=True)
    sections = []

    def write(path, text):
        old = open(path).read() if os.path.exists(path) else None
        if old != text:  # unchanged files keep their time stamp: no needless rebuild
            with open(path, 'w') as f:
                f.write(text)

    def document(names, command, parent=None):
        ctx = click.Context(command, info_name=names[-1], parent=parent, terminal_width=88,
                            max_content_width=88)
        name = '_'.join(names)
        write(os.path.join(out, f'cli_{name}.txt'), command.get_help(ctx))
        if parent is not None:
            title = ' '.join(names[1:])
            sections.append(f'{title}\n{"-" * len(title)}\n\n')
        sections.append(f'.. literalinclude:: _generated/cli_{name}.txt\n   :language: text\n\n')
        if isinstance(command, click.Group):  # in the order of its --help
            for sub_name in command.list_commands(ctx):
                document(names + [sub_name], command.get_command(ctx, sub_name), ctx)

    document(['dsgdn-pyg'], main)
    write(os.path.join(out, 'commands.rst'), ''.join(sections))


def _link_repository_markdown(app, doctree):
    """Markdown links from these pages to the repository's other markdown files
    (``../benchmarks/README.md#section``, ``../README.md``) stay links to those files, as on
    GitHub, instead of "unknown document" warnings; a link to a file that does not exist is
    still an error."""
    for node in list(doctree.findall(addnodes.pending_xref)):
        if node.get('reftype') != 'myst' or node.get('refdomain') != 'doc':
            continue
        path = node['reftarget'] + '.md'
        if not os.path.isabs(path) or os.path.commonpath([path, str(app.srcdir)]) == str(app.srcdir):
            continue  # a page of this documentation: myst resolves (and checks) it
        if not os.path.isfile(path):
            logging.getLogger(__name__).warning('link to a missing file: %s', path, location=node)
            continue
        doc_dir = os.path.dirname(os.path.join(app.outdir, app.env.docname))
        uri = os.path.relpath(path, doc_dir)
        if node.get('reftargetid'):
            uri += '#' + node['reftargetid']
        node.replace_self(nodes.reference('', '', *node[0].children, refuri=uri))


def setup(app):
    app.connect('builder-inited', _write_cli_help)
    app.connect('doctree-read', _link_repository_markdown)
