package org.nisprotocol.embedded;

import org.nisprotocol.core.DeliveryLedger;
import org.nisprotocol.testkit.DeliveryLedgerContract;

/** The ledger contract for the in-process ledger, which its instance's threads share; it expires in real time. */
class InMemoryDeliveryLedgerContractTest extends DeliveryLedgerContract {
  @Override
  protected DeliveryLedger createLedger() {
    return InMemoryDeliveryLedger.create();
  }

  @Override
  protected DeliveryLedger ledgerOfAnotherInstance(DeliveryLedger ledger) {
    return ledger;
  }
}
