/* Reading and writing character automata (char_automata.h). */
#include "char_automata.h" /* Python.h first */

#include <stdlib.h>
#include <string.h>


void dfa_free(Dfa *dfa)
{
    free(dfa->starts);
    free(dfa->low);
    free(dfa->high);
    free(dfa->target);
    free(dfa->accepting);
}

int dfa_read(PyObject *transitions, PyObject *accepting, Dfa *dfa)
{
    memset(dfa, 0, sizeof *dfa);
    if (!PyTuple_Check(transitions)) {
        PyErr_SetString(PyExc_TypeError, "transitions must be a tuple");
        return 0;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(transitions), total = 0;
    for (Py_ssize_t s = 0; s < n; s++) {
        PyObject *row = PyTuple_GET_ITEM(transitions, s);
        if (!PyTuple_Check(row)) {
            PyErr_SetString(PyExc_TypeError, "each row must be a tuple");
            return 0;
        }
        total += PyTuple_GET_SIZE(row);
    }
    dfa->n_states = n;
    dfa->starts = malloc((size_t)(n + 1) * sizeof *dfa->starts);
    dfa->low = malloc((size_t)(total + 1) * sizeof *dfa->low);
    dfa->high = malloc((size_t)(total + 1) * sizeof *dfa->high);
    dfa->target = malloc((size_t)(total + 1) * sizeof *dfa->target);
    dfa->accepting = calloc((size_t)n + 1, 1);
    if (!dfa->starts || !dfa->low || !dfa->high || !dfa->target || !dfa->accepting) {
        PyErr_NoMemory();
        return 0;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t s = 0; s < n; s++) {
        PyObject *row = PyTuple_GET_ITEM(transitions, s);
        dfa->starts[s] = at;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(row); i++, at++) {
            PyObject *edge = PyTuple_GET_ITEM(row, i);
            if (!PyTuple_Check(edge) || PyTuple_GET_SIZE(edge) != 3) {
                PyErr_SetString(PyExc_TypeError, "each transition must be (low, high, target)");
                return 0;
            }
            long low = PyLong_AsLong(PyTuple_GET_ITEM(edge, 0));
            long high = PyLong_AsLong(PyTuple_GET_ITEM(edge, 1));
            long target = PyLong_AsLong(PyTuple_GET_ITEM(edge, 2));
            if (PyErr_Occurred())
                return 0;
            if (low < 0 || high > MAX_CODE_POINT || low > high) {
                PyErr_SetString(PyExc_ValueError, "a transition's characters are not a range of code points");
                return 0;
            }
            if (target < 0 || target >= n) {
                PyErr_SetString(PyExc_ValueError, "a transition's target is not a state");
                return 0;
            }
            dfa->low[at] = (int32_t)low;
            dfa->high[at] = (int32_t)high;
            dfa->target[at] = (int32_t)target;
        }
    }
    dfa->starts[n] = at;
    PyObject *iterator = PyObject_GetIter(accepting), *item;
    if (!iterator)
        return 0;
    while ((item = PyIter_Next(iterator))) {
        long state = PyLong_AsLong(item);
        Py_DECREF(item);
        if (state >= 0 && state < n)
            dfa->accepting[state] = 1;
        else if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "an accepting state is not a state");
        if (PyErr_Occurred())
            break;
    }
    Py_DECREF(iterator);
    return !PyErr_Occurred();
}

PyObject *dfa_result(int32_t n, const int32_t *starts, const int32_t *triples, const unsigned char *accepting)
{
    Py_ssize_t n_accepting = 0;
    for (int32_t k = 0; k < n; k++)
        n_accepting += accepting[k] != 0;
    PyObject *rows = PyTuple_New(n), *accepted = PyTuple_New(n_accepting), *result = NULL;
    Py_ssize_t at = 0;
    int failed = !rows || !accepted;
    for (int32_t k = 0; !failed && k < n; k++) {
        PyObject *row = PyTuple_New(starts[k + 1] - starts[k]);
        if (!row) {
            failed = 1;
            break;
        }
        PyTuple_SET_ITEM(rows, k, row);
        for (int32_t i = starts[k]; i < starts[k + 1]; i++) {
            const int32_t *t = &triples[3 * i];
            PyObject *edge = Py_BuildValue("(iii)", (int)t[0], (int)t[1], (int)t[2]);
            if (!edge) {
                failed = 1;
                break;
            }
            PyTuple_SET_ITEM(row, i - starts[k], edge);
        }
        if (!failed && accepting[k]) {
            PyObject *number = PyLong_FromLong((long)k);
            if (!number)
                failed = 1;
            else
                PyTuple_SET_ITEM(accepted, at++, number);
        }
    }
    if (!failed)
        result = PyTuple_Pack(2, rows, accepted);
    Py_XDECREF(rows);
    Py_XDECREF(accepted);
    return result;
}

int dfa_prune(int32_t *n, int32_t *starts, int32_t *triples, unsigned char *accepting)
{
    int32_t count = *n, edges = starts[count];
    int32_t *reverse_starts = calloc((size_t)count + 2, sizeof(int32_t));
    int32_t *reverse = malloc(((size_t)edges + 1) * sizeof(int32_t));
    int32_t *pending = malloc(((size_t)count + 1) * sizeof(int32_t));
    int32_t *numbers = malloc(((size_t)count + 1) * sizeof(int32_t));
    int32_t *order = malloc(((size_t)count + 1) * sizeof(int32_t));
    unsigned char *alive = calloc((size_t)count + 1, 1);
    unsigned char *kept_accepting = calloc((size_t)count + 1, 1);
    int32_t *kept_starts = malloc(((size_t)count + 1) * sizeof(int32_t));
    int32_t *kept_triples = malloc(((size_t)edges * 3 + 1) * sizeof(int32_t));
    int ok = reverse_starts && reverse && pending && numbers && order && alive && kept_accepting && kept_starts &&
             kept_triples;
    if (ok) {
        for (int32_t e = 0; e < edges; e++) /* sources by target, counted then placed */
            reverse_starts[triples[3 * e + 2] + 2]++;
        for (int32_t s = 0; s < count; s++)
            reverse_starts[s + 2] += reverse_starts[s + 1];
        for (int32_t s = 0; s < count; s++)
            for (int32_t e = starts[s]; e < starts[s + 1]; e++)
                reverse[reverse_starts[triples[3 * e + 2] + 1]++] = s;
        int32_t waiting = 0;
        for (int32_t s = 0; s < count; s++)
            if (accepting[s]) {
                alive[s] = 1;
                pending[waiting++] = s;
            }
        while (waiting) {
            int32_t s = pending[--waiting];
            for (int32_t e = reverse_starts[s]; e < reverse_starts[s + 1]; e++)
                if (!alive[reverse[e]]) {
                    alive[reverse[e]] = 1;
                    pending[waiting++] = reverse[e];
                }
        }
        int32_t kept = 0, at = 0;
        if (count > 0 && alive[0]) {
            for (int32_t s = 0; s < count; s++)
                numbers[s] = -1;
            numbers[0] = 0;
            order[0] = 0;
            kept = 1;
            for (int32_t k = 0; k < kept; k++) {
                int32_t s = order[k];
                kept_starts[k] = at;
                kept_accepting[k] = accepting[s];
                for (int32_t e = starts[s]; e < starts[s + 1]; e++) {
                    int32_t target = triples[3 * e + 2];
                    if (!alive[target])
                        continue;
                    if (numbers[target] < 0) {
                        numbers[target] = kept;
                        order[kept++] = target;
                    }
                    kept_triples[3 * at] = triples[3 * e];
                    kept_triples[3 * at + 1] = triples[3 * e + 1];
                    kept_triples[3 * at + 2] = numbers[target];
                    at++;
                }
            }
        }
        kept_starts[kept] = at;
        memcpy(starts, kept_starts, ((size_t)kept + 1) * sizeof(int32_t));
        if (at) /* no transitions at all (the language of ""): `triples` may be NULL */
            memcpy(triples, kept_triples, (size_t)at * 3 * sizeof(int32_t));
        memcpy(accepting, kept_accepting, (size_t)kept);
        *n = kept;
    }
    free(reverse_starts);
    free(reverse);
    free(pending);
    free(numbers);
    free(order);
    free(alive);
    free(kept_accepting);
    free(kept_starts);
    free(kept_triples);
    return ok;
}
