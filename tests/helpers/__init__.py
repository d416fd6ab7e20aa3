"""What the tests share besides fixtures (those are in conftest.py): fakes, stubs and runners.

- ``counting``: counting the requests a client sends upstream, on the wire;
- ``imports``: the package's import graph, read from its source;
- ``kernels``: running code in a real kernel and reading what came back;
- ``notebook``: the REST API's replies as the notebook layer gets them, and a scripted backend;
- ``sandbox``: calls and checks against the sandbox's HTTP API;
- ``server``: the server extension under pytest-jupyter, its REST API as kernels call it;
- ``sshd``: a real OpenSSH sshd on a free loopback port;
- ``vendor``: an HTTP server answering with the vendor sheet's own examples.
"""
