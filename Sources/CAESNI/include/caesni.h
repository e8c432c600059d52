#ifndef CAESNI_H
#define CAESNI_H
#endif
