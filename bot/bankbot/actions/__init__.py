"""Custom actions of the reference banking assistant (`rasa run actions --actions bankbot.actions`)."""

from bankbot.actions.accounts import (  # noqa: F401
    ActionCheckBalance,
    ActionRecentTransactions,
    ActionUpdateAddress,
    ValidateUpdateAddressForm,
)
from bankbot.actions.cards import (  # noqa: F401
    ActionActivateCard,
    ActionAskBlockConfirmed,
    ActionAskCardType,
    ActionBlockCard,
    ActionCardDeliveryStatus,
    ValidateActivateCardForm,
    ValidateBlockCardForm,
)
from bankbot.actions.conversation import (  # noqa: F401
    ActionEndConversation,
    ActionEscalate,
    ActionNotUnderstood,
    ActionValidateSlotMappings,
)
from bankbot.actions.payments import ActionExchangeRates, ActionRefundStatus, ActionTransferStatus  # noqa: F401
