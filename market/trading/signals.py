"""Signals trading sends inside its transactions, for the apps above it (deals) to act in the same
transaction: trading never imports them."""

from django.dispatch import Signal

# award=Award: sent inside the transaction that creates the award.
award_created = Signal()
# deposit=Deposit, from_state=str, to_state=str: sent inside the transaction of the move.
deposit_moved = Signal()
