"""dnsmasq's Lua calls, reproduced with liblua (ctypes) for fast tests.

dnsmasq (helper.c) loads ``--dhcp-luascript`` with luaL_dofile and calls
``lease(action, t)`` with lua_call: an error escaping ``lease`` kills
its helper. :class:`LuaHook` loads the same file into the same Lua
(liblua5.4, the library dnsmasq-base-lua links) and calls ``lease``
under lua_pcall, so a test can tell that an error WOULD have escaped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

LUA_OK = 0


@functools.cache
def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL("liblua5.4.so.0")
    ptr = ctypes.c_void_p
    lib.luaL_newstate.restype = ptr
    lib.luaL_openlibs.argtypes = [ptr]
    lib.luaL_loadfilex.argtypes = [ptr, ctypes.c_char_p, ctypes.c_char_p]
    lib.lua_pcallk.argtypes = [
        ptr,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.lua_getglobal.argtypes = [ptr, ctypes.c_char_p]
    lib.lua_pushstring.argtypes = [ptr, ctypes.c_char_p]
    lib.lua_createtable.argtypes = [ptr, ctypes.c_int, ctypes.c_int]
    lib.lua_setfield.argtypes = [ptr, ctypes.c_int, ctypes.c_char_p]
    lib.lua_tolstring.argtypes = [ptr, ctypes.c_int, ctypes.c_void_p]
    lib.lua_tolstring.restype = ctypes.c_char_p
    lib.lua_settop.argtypes = [ptr, ctypes.c_int]
    lib.lua_close.argtypes = [ptr]
    return lib


class LuaError(Exception):
    """An error that would have escaped to dnsmasq."""


class LuaHook:
    """One loaded script (what one dnsmasq helper holds)."""

    def __init__(self, path: str) -> None:
        lib = _lib()
        self.state = lib.luaL_newstate()
        lib.luaL_openlibs(self.state)
        status = lib.luaL_loadfilex(self.state, path.encode(), None)
        if status == LUA_OK:
            status = lib.lua_pcallk(self.state, 0, 0, 0, None, None)
        if status != LUA_OK:
            raise LuaError(self._pop_error())

    def _pop_error(self) -> str:
        lib = _lib()
        text = lib.lua_tolstring(self.state, -1, None) or b""
        lib.lua_settop(self.state, 0)
        return text.decode("utf-8", "replace")

    def lease(self, action: str, **fields: str | bytes) -> None:
        """Call ``lease(action, {fields})``; LuaError if it raised."""
        lib = _lib()
        lib.lua_getglobal(self.state, b"lease")
        lib.lua_pushstring(self.state, action.encode())
        lib.lua_createtable(self.state, 0, len(fields))
        for key, value in fields.items():
            raw = value if isinstance(value, bytes) else value.encode()
            lib.lua_pushstring(self.state, raw)
            lib.lua_setfield(self.state, -2, key.encode())
        if lib.lua_pcallk(self.state, 2, 0, 0, None, None) != LUA_OK:
            raise LuaError(self._pop_error())

    def close(self) -> None:
        _lib().lua_close(self.state)
