"""collections.abc's ABCs, without importing the collections package.

collections/abc.py is ``from _collections_abc import *``, and ``os`` has already
imported _collections_abc; the ``collections`` package around it (plus the
operator, keyword, reprlib and itertools it pulls in) is ~1 ms of every
berth-runtime call, which imports nothing else of it.  The runtime's modules
take their ABCs from here.
"""

from _collections_abc import Callable, Iterable, Iterator, Mapping, Sequence

__all__ = ["Callable", "Iterable", "Iterator", "Mapping", "Sequence"]
