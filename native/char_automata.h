/* Character automata as C reads them from grammar/json_schema/char_dfa.py's CharDfa rows and writes them back:
 * shared by the product (dfa_product.c) and minimization (dfa_minimize.c). */
#ifndef EDGE_CHAR_AUTOMATA_H
#define EDGE_CHAR_AUTOMATA_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define MAX_CODE_POINT 0x10FFFF
#define MAX_STATES_LIMIT (1L << 24)

typedef struct {
    Py_ssize_t n_states;
    Py_ssize_t *starts; /* n_states + 1 offsets into the transition arrays */
    int32_t *low, *high, *target;
    unsigned char *accepting;
} Dfa;

/* `transitions` (a tuple of rows, each a tuple of (low, high, target)) and `accepting` (an iterable of state
 * numbers) into flat arrays; 0 with a Python error set on a malformed automaton (free it either way). */
int dfa_read(PyObject *transitions, PyObject *accepting, Dfa *dfa);
void dfa_free(Dfa *dfa);

/* Keeps the states reachable from 0 that can reach an accepting one, renumbered in the order a breadth-first
 * walk over each row meets them (char_dfa.py's `_pruned`), in place: `n`, the row starts (n + 1 offsets into
 * `triples`, in triples), the (low, high, target) triples and the accepting flags are rewritten; an automaton
 * whose start reaches no accepting state is left with none. Touches no Python object. 0 out of memory. */
int dfa_prune(int32_t *n, int32_t *starts, int32_t *triples, unsigned char *accepting);

/* (transitions, accepting) as Python tuples: `n` rows, row k's transitions from starts[k] to starts[k + 1]
 * (triples of low, high, target in `triples`), accepting[k] nonzero where row k accepts. NULL on error. */
PyObject *dfa_result(int32_t n, const int32_t *starts, const int32_t *triples, const unsigned char *accepting);

#endif
