/* edge_runtime._native: the grammar engine's hot loops, portable C99 with no intrinsics. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "native.h"

static PyMethodDef native_methods[] = {
    {"apply_mask", edge_apply_mask, METH_VARARGS,
     "apply_mask(logits: float32 buffer, mask: bool buffer) -> None\n"
     "Set logits[i] = -inf wherever mask[i] is false, in place. Releases the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "edge_runtime._native", NULL, -1, native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&native_module);
}
