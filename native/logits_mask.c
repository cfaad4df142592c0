/* Applies a token mask to a logits row in place: the last step of constrained sampling, run once per
 * rejected sample over the whole vocabulary (262,144 floats for Gemma 3). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#include "native.h"

PyObject *
edge_apply_mask(PyObject *self, PyObject *args)
{
    Py_buffer logits = {0}, mask = {0};
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "w*y*:apply_mask", &logits, &mask))
        return NULL;
    if (logits.itemsize != 4 || logits.len % 4 != 0) {
        PyErr_SetString(PyExc_ValueError, "logits must be a contiguous float32 buffer");
        goto exit;
    }
    Py_ssize_t n = logits.len / 4;
    if (mask.len != n) {
        PyErr_Format(PyExc_ValueError, "mask has %zd entries but logits have %zd; pass one bool per token",
                     mask.len, n);
        goto exit;
    }
    float *row = (float *)logits.buf;
    const uint8_t *allowed = (const uint8_t *)mask.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!allowed[i])
            row[i] = -INFINITY;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
exit:
    PyBuffer_Release(&logits);
    PyBuffer_Release(&mask);
    return result;
}
