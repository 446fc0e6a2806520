"""`svpn plan`: sizing a farm for a number of users and the capacity document. Imports svpn.farm and
svpn.core."""
