/* Conversions between a bool-per-token mask (what samplers index) and a packed bitmask (what the mask cache
 * stores: 32 KiB for 262,144 tokens). Bit order is little: token i is bit (i & 7) of byte (i >> 3). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "native.h"

static uint8_t spread_table[256][8];
static int spread_ready = 0;

static void
fill_spread_table(void)
{
    for (int byte = 0; byte < 256; byte++)
        for (int bit = 0; bit < 8; bit++)
            spread_table[byte][bit] = (uint8_t)((byte >> bit) & 1);
    spread_ready = 1;
}

static int
check_sizes(Py_ssize_t n_bools, Py_ssize_t n_bytes)
{
    if ((n_bools + 7) / 8 != n_bytes) {
        PyErr_Format(PyExc_ValueError,
                     "a mask of %zd tokens packs into %zd bytes, but the bitmask has %zd; allocate "
                     "np.zeros((n + 7) // 8, dtype=np.uint8)",
                     n_bools, (n_bools + 7) / 8, n_bytes);
        return -1;
    }
    return 0;
}

PyObject *
edge_pack_mask(PyObject *self, PyObject *args)
{
    Py_buffer bools = {0}, bits = {0};
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*w*:pack_mask", &bools, &bits))
        return NULL;
    if (check_sizes(bools.len, bits.len) < 0)
        goto exit;
    const uint8_t *in = bools.buf;
    uint8_t *out = bits.buf;
    Py_ssize_t n = bools.len, whole = n / 8;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < whole; i++) {
        const uint8_t *group = in + 8 * i;
        out[i] = (uint8_t)((group[0] != 0) | (group[1] != 0) << 1 | (group[2] != 0) << 2 | (group[3] != 0) << 3 |
                           (group[4] != 0) << 4 | (group[5] != 0) << 5 | (group[6] != 0) << 6 |
                           (group[7] != 0) << 7);
    }
    if (whole * 8 < n) {
        uint8_t last = 0;
        for (Py_ssize_t i = whole * 8; i < n; i++)
            last |= (uint8_t)((in[i] != 0) << (i & 7));
        out[whole] = last;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
exit:
    PyBuffer_Release(&bools);
    PyBuffer_Release(&bits);
    return result;
}

PyObject *
edge_unpack_mask(PyObject *self, PyObject *args)
{
    Py_buffer bits = {0}, bools = {0};
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*w*:unpack_mask", &bits, &bools))
        return NULL;
    if (check_sizes(bools.len, bits.len) < 0)
        goto exit;
    if (!spread_ready)
        fill_spread_table();
    const uint8_t *in = bits.buf;
    uint8_t *out = bools.buf;
    Py_ssize_t n = bools.len, whole = n / 8;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < whole; i++)
        memcpy(out + 8 * i, spread_table[in[i]], 8);
    for (Py_ssize_t i = whole * 8; i < n; i++)
        out[i] = (uint8_t)((in[i >> 3] >> (i & 7)) & 1);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
exit:
    PyBuffer_Release(&bits);
    PyBuffer_Release(&bools);
    return result;
}
