/* Declarations shared by the C files of edge_runtime._native. */
#ifndef EDGE_NATIVE_H
#define EDGE_NATIVE_H
#include <Python.h>

PyObject *edge_apply_mask(PyObject *self, PyObject *args);
PyObject *edge_trie_walk(PyObject *self, PyObject *args);
PyObject *edge_pack_mask(PyObject *self, PyObject *args);
PyObject *edge_unpack_mask(PyObject *self, PyObject *args);
PyObject *edge_lower_gbnf(PyObject *self, PyObject *args);
PyObject *edge_dfa_product(PyObject *self, PyObject *args);
PyObject *edge_dfa_minimize(PyObject *self, PyObject *args);
PyObject *edge_nfa_determinize(PyObject *self, PyObject *args);
PyObject *edge_schema_key(PyObject *self, PyObject *args);

#endif
