/* Op names, generated from KN_OP_LIST, for logs, metrics and the parity tests. */
#include "kernels.h"

const char *const kn_op_names[] = {
#define KN__NAME(name) #name,
    KN_OP_LIST(KN__NAME)
#undef KN__NAME
};
const int kn_op_count = sizeof kn_op_names / sizeof kn_op_names[0];
