"""The helpdesk's tools: where a user is connected (whereis), why their attempts failed (explain), the farm
at a glance (status), and the web page that serves them. Reads the farm through Ansible's connections; imports
svpn.access, svpn.farm and svpn.core."""
