"""A catalogue of everyday benign traffic for the lab (issue 14, item 2).

Real clients against real servers (Debian packages; aioquic from PyPI) in namespaces of its own
(``nsCat*``, 10.98.0.0/24, fd00:98::/64), captured on the bridge, metered by ``capture/flowmeter`` in
the lab's profiles, every flow labelled ``BENIGN`` by construction with the activity it belongs to.
``python -m lab.catalogue list`` shows the activities, ``... run`` makes the flows.
"""
