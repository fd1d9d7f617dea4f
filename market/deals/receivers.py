"""Deals act inside trading's transactions: an award becomes a deal, a deposit's move becomes a
ledger row. Trading sends the signals and never imports deals."""

from django.dispatch import receiver

from market.trading.signals import award_created, deposit_moved


@receiver(award_created, dispatch_uid="deals.award_created")
def award_to_deal(sender, award, **kwargs):
    from market.deals.services import deal_from_award

    deal_from_award(award)


@receiver(deposit_moved, dispatch_uid="deals.deposit_moved")
def deposit_to_ledger(sender, deposit, from_state, to_state, **kwargs):
    from market.deals.services import deposit_moved_record

    deposit_moved_record(deposit, from_state=from_state, to_state=to_state)
