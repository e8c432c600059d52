import TLGen
