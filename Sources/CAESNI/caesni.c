#include "caesni.h"
