"""The helpdesk's web page (`svpn helpdesk serve`): a Flask application over a
:class:`svpn.helpdesk.answers.Backend`; see :func:`svpn.helpdesk.web.app.create_app`."""
